"""S3 in tests: moto's standalone server on loopback (fixtures ``s3_url`` and ``s3_client`` in
tests/conftest.py) and the settings that send Django's media there."""

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"


def use_s3_media(settings, bucket="media"):
    """Django's default and private storages become the bucket (the endpoint is set by
    ``s3_client``); private files under their own prefix, as production configures them."""
    from nftsite.settings import private_storage_config

    settings.AWS_STORAGE_BUCKET_NAME = bucket
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage"},
        "private": private_storage_config(on_s3=True),
    }
