"""Settings for Non-Fungible Fakes.

Every value comes from the environment (12-factor). The defaults run the whole platform on one
machine with no services: SQLite and media files under ``var/``, an embedded filesystem broker.
Production points ``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``AWS_STORAGE_BUCKET_NAME`` at
shared PostgreSQL, Redis and S3. See README.md for the full table.
"""

import math
import re
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
VAR_DIR = Path(env.str("NFF_VAR_DIR", default=str(BASE_DIR / "var")))


def _choice(name, choices, default):
    value = env.str(name, default=default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(choices)}")
    return value


def _positive(name, default, cast, kind):
    try:
        value = cast(name, default=default)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be {kind}: {exc}") from None
    if not 0 < value < math.inf:  # nan and inf are floats too
        raise ImproperlyConfigured(f"{name} must be positive and finite, got {value}")
    return value


def _positive_int(name, default):
    return _positive(name, default, env.int, "an integer")


def _positive_float(name, default):
    return _positive(name, default, env.float, "a number")


def _fraction(name, default):
    """A number from 0 to 1 (a share or a rate)."""
    try:
        value = env.float(name, default=default)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number from 0 to 1: {exc}") from None
    if not 0.0 <= value <= 1.0:
        raise ImproperlyConfigured(f"{name} must be a number from 0 to 1, got {value}")
    return value


def _bool(name, default):
    raw = env.str(name, default=str(default)).strip().lower()
    truthy, falsy = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
    if raw not in truthy | falsy:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")
    return raw in truthy


# --- Core -----------------------------------------------------------------------------------
DEBUG = _bool("DEBUG", False)


def _local_secret_key():
    """A random key kept in var/ so one-machine installs need no configuration.

    Several web nodes must share SECRET_KEY, so production sets it in the environment.
    """
    path = VAR_DIR / "secret_key"
    if not path.exists():
        import os
        import tempfile

        from django.core.management.utils import get_random_secret_key

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(get_random_secret_key())
        try:
            os.link(tmp, path)  # atomic: the web server and the worker may start together
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_NAME = "Non-Fungible Fakes"

# --- Security ---------------------------------------------------------------------------------
# Production runs behind TLS and sets SECURE_HTTPS=true: secure cookies, HTTPS redirect, HSTS.
# One machine (`make run`) serves plain HTTP on loopback, so the default is off.
SECURE_HTTPS = _bool("SECURE_HTTPS", False)
if _bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = SECURE_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if SECURE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

INSTALLED_APPS = [
    "nftsite.apps.SiteAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "nftsite",
    "csp",
    "collections_app",
    "gan_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "nftsite.middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "django.contrib.sessions.middleware.SessionMiddleware",
    # nftsite.middleware: Django's and django-csp's own, run on the event loop under ASGI.
    "nftsite.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "nftsite.middleware.AuthenticationMiddleware",
    "nftsite.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "nftsite.middleware.CSPMiddleware",
]

ROOT_URLCONF = "nftsite.urls"
WSGI_APPLICATION = "nftsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "nftsite.context_processors.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_database_url = env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
if urlsplit(_database_url).scheme not in environ.Env.DB_SCHEMES:
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {urlsplit(_database_url).scheme!r} is not a known database "
        "(use postgres://user:password@host:5432/name or sqlite:///path)"
    )
DATABASES = {"default": environ.Env.db_url_config(_database_url)}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Connections each web process borrows from its pool (nftsite/asgi.py); PostgreSQL only.
DATABASE_POOL_SIZE = _positive_int("DATABASE_POOL_SIZE", 10)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and workers share one SQLite file. WAL lets readers run beside the writer;
    # IMMEDIATE transactions take the write lock at BEGIN, so a busy file makes them wait (up
    # to the timeout) instead of failing at once with "database is locked" when a transaction
    # that read first tries to write (SQLite skips the wait there to avoid a deadlock).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Files ----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
# Checkpoints, generators, classifiers, uploads (nftsite/storage.py): never under MEDIA_URL.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(VAR_DIR / "private")))
PRIVATE_MEDIA_URL = "/private-media/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "nftsite.staticfinders.NodeModulesFinder",  # pinned npm packages (plotly.js), no CDN
]
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
AWS_LOCATION = env.str("AWS_LOCATION", default="nft-assets")
AWS_PRIVATE_LOCATION = env.str("AWS_PRIVATE_LOCATION", default="nft-private")
AWS_DEFAULT_ACL = None
AWS_QUERYSTRING_AUTH = True
AWS_S3_FILE_OVERWRITE = False
AWS_S3_CUSTOM_DOMAIN = env.str("AWS_S3_CUSTOM_DOMAIN", default="") or None
if AWS_S3_ENDPOINT_URL and not urlsplit(AWS_S3_ENDPOINT_URL).scheme:
    raise ImproperlyConfigured("AWS_S3_ENDPOINT_URL must be a URL such as http://127.0.0.1:9000")
_default_storage = (
    {"BACKEND": "storages.backends.s3.S3Storage"}
    if AWS_STORAGE_BUCKET_NAME
    else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
)


def private_storage_config(on_s3):
    """The "private" storage alias: a private prefix with signed URLs in S3, else a folder
    that no URL serves (staff download through nftsite.views.private_file)."""
    if on_s3:
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "location": AWS_PRIVATE_LOCATION,
                "default_acl": "private",
                "querystring_auth": True,
                "custom_domain": None,
            },
        }
    return {
        "BACKEND": "nftsite.storage.PrivateFileSystemStorage",
        "OPTIONS": {"base_url": PRIVATE_MEDIA_URL},
    }


STORAGES = {
    "default": _default_storage,
    "private": private_storage_config(bool(AWS_STORAGE_BUCKET_NAME)),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG


def _media_origins():
    """Where media URLs point when files live in S3 (images load from there, not from us)."""
    if not AWS_STORAGE_BUCKET_NAME:
        return []
    custom = env.str("AWS_S3_CUSTOM_DOMAIN", default="")
    if custom:
        return [f"https://{custom}"]
    if AWS_S3_ENDPOINT_URL:
        parts = urlsplit(AWS_S3_ENDPOINT_URL)
        return [f"{parts.scheme}://{parts.netloc}"]
    return ["https://*.amazonaws.com"]


# Our own scripts only (plotly.js included); plotly styles its SVG inline, hence style-src.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *_media_origins()],
        "connect-src": ["'self'", *_media_origins()],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Uploads (archives through the admin) stream to disk above this size instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
MAX_ARCHIVE_UPLOAD_BYTES = _positive_int("MAX_ARCHIVE_UPLOAD_BYTES", 2 * 1024**3)

# --- Celery ---------------------------------------------------------------------------------
# "localhost" only keeps kombu from warning that no host was given; the folders are what count.
_broker_default = "filesystem://localhost/"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_broker_default)
_broker_scheme = urlsplit(CELERY_BROKER_URL).scheme
if _broker_scheme not in {"filesystem", "redis", "rediss", "amqp", "memory"}:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL scheme {_broker_scheme!r} is not supported "
        "(use redis://, amqp:// or filesystem://)"
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if _broker_scheme == "filesystem":
    _broker_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # broadcast (default: ./control)
        "store_processed": False,
        "polling_interval": 0.05,  # seconds; the default 1 s would show in every Generate click
    }
elif _broker_scheme.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A message not acked within this many seconds is handed to another worker; every task
        # (a training chunk included) must finish well inside it.
        "visibility_timeout": _positive_int("CELERY_VISIBILITY_TIMEOUT", 3600),
        # How soon such a message is found: kombu scans only every 10th sweep of 10 s by default
        # (~100 s), and a scan's lock left by a broker restart blocks the scans for 5 min. One
        # scan per sweep and a short lock bring a message lost in a restart back within a sweep
        # of its visibility timeout (tests/platform/test_broker_restart.py).
        "unacked_restore_interval": _positive_int("CELERY_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 60,
        # Lets several deployments (or test runs) share one Redis without seeing each other.
        "global_keyprefix": env.str("CELERY_BROKER_KEY_PREFIX", default=""),
    }
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery closes every database connection after every task unless told to reuse them: a new
# PostgreSQL connection per task was a quarter of a generate task's time. Now a worker keeps
# its connection; before each task Django's own check replaces one older than CONN_MAX_AGE
# or broken (nftsite/worker.py), and Celery still closes it every 2 x this many tasks.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_IGNORE_RESULT = True  # outcomes live in our own rows (IngestJob, TrainingRun, ...)
CELERY_TASK_TIME_LIMIT = _positive_int("CELERY_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = _positive_int("CELERY_TASK_SOFT_TIME_LIMIT", 1500)
# The four queues, defined here once: ingest (I/O bound), train (GPU, one task at a time),
# generate (GPU or CPU, generators cached), default.
QUEUE_INGEST, QUEUE_TRAIN, QUEUE_GENERATE, QUEUE_DEFAULT = "ingest", "train", "generate", "default"
JOB_QUEUES = (QUEUE_INGEST, QUEUE_TRAIN, QUEUE_GENERATE, QUEUE_DEFAULT)
CELERY_TASK_DEFAULT_QUEUE = QUEUE_DEFAULT
CELERY_TASK_ROUTES = {
    "collections_app.tasks.*": {"queue": QUEUE_INGEST},
    "collections_app.tasks.compute_analytics": {"queue": QUEUE_DEFAULT},
    "gan_app.tasks.train_*": {"queue": QUEUE_TRAIN},
    "gan_app.tasks.evaluate_*": {"queue": QUEUE_TRAIN},
    "gan_app.tasks.generate_*": {"queue": QUEUE_GENERATE},
    "gan_app.tasks.fabricate_*": {"queue": QUEUE_GENERATE},
    "nftsite.tasks.*": {"queue": QUEUE_DEFAULT},
}
# Task events (sent, received, started, succeeded) are for a monitor such as Flower; nothing
# here reads them, and each one is a broker publish on the Generate path (four per image).
CELERY_WORKER_SEND_TASK_EVENTS = CELERY_TASK_SEND_SENT_EVENT = _bool("CELERY_TASK_EVENTS", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Product settings ----------------------------------------------------------------------
OPENSEA_API_URL = env.str("OPENSEA_API_URL", default="https://api.opensea.io")
OPENSEA_API_KEY = env.str("OPENSEA_API_KEY", default="")
OPENSEA_RATE_LIMIT = _positive_float("OPENSEA_RATE_LIMIT", 4.0)  # requests per second
OPENSEA_MAX_WORKERS = _positive_int("OPENSEA_MAX_WORKERS", 8)
# Server errors and timeouts are retried this many times, waiting about BACKOFF, 2xBACKOFF,
# 4xBACKOFF... (with jitter, at most 30 s) in between.
OPENSEA_MAX_RETRIES = _positive_int("OPENSEA_MAX_RETRIES", 6)
OPENSEA_BACKOFF_SECONDS = _positive_float("OPENSEA_BACKOFF_SECONDS", 0.5)
# Ingest guards: one image, one archive. Anything over a limit is refused and reported per item.
INGEST_MAX_IMAGE_PIXELS = _positive_int("INGEST_MAX_IMAGE_PIXELS", 40_000_000)
INGEST_MAX_IMAGE_BYTES = _positive_int("INGEST_MAX_IMAGE_BYTES", 32 * 1024**2)
ARCHIVE_MAX_ENTRIES = _positive_int("ARCHIVE_MAX_ENTRIES", 250_000)
ARCHIVE_MAX_UNCOMPRESSED_BYTES = _positive_int("ARCHIVE_MAX_UNCOMPRESSED_BYTES", 20 * 1024**3)
ARCHIVE_MAX_RATIO = _positive_int("ARCHIVE_MAX_RATIO", 100)  # uncompressed / compressed
# Members below this are judged by the total size, the per-member size cap and the pixel limit
# alone: a flat 6000x6000 PNG or a 300 KB metadata JSON compresses over 100:1 and is no bomb.
ARCHIVE_RATIO_CHECK_FROM_BYTES = _positive_int("ARCHIVE_RATIO_CHECK_FROM_BYTES", 8 * 1024**2)
# An ingest task works this long, then re-queues itself to continue from the saved cursor, so
# no task outlives the broker's visibility timeout or the task time limit.
INGEST_CHUNK_SECONDS = _positive_int("INGEST_CHUNK_SECONDS", 600)
GENERATOR_CACHE_SIZE = _positive_int("GENERATOR_CACHE_SIZE", 4)
# Generate workers look for newly published generators this often (seconds).
GENERATOR_WARM_INTERVAL = _positive_float("GENERATOR_WARM_INTERVAL", 10.0)


# --- Public generation (gan_app.generation, gan_app.ratelimit) ------------------------------
def _rate(name, default):
    """``N/unit`` or ``N/<k>unit`` (unit s, m, h or d), e.g. ``30/m`` or ``100/5m``."""
    value = env.str(name, default=default).strip()
    if not re.fullmatch(r"[1-9]\d*/\d*[smhd]", value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate such as 30/m, 500/h or 100/5m "
            "(a positive count, a slash, an optional multiplier and s, m, h or d)"
        )
    return value


# Generate requests per client (hashed address) in the window; counted in the database, so the
# limit holds across every web process and node.
GENERATION_RATE_LIMIT = _rate("GENERATION_RATE_LIMIT", "30/m")
# "Report this image" posts per client in the window (counted over the moderation queue).
REPORT_RATE_LIMIT = _rate("REPORT_RATE_LIMIT", "5/h")
# Long polls of a request's status (GET /generate/r/<id>.json?wait=S): the longest wait granted
# (a larger one is cut to it; below common proxy idle timeouts), and how many waits one web
# process holds at once for one client (hashed address, as the rate limit) and in all. A wait
# over either cap is answered at once with 429 and Retry-After instead of being held.
LONG_POLL_MAX_WAIT = _positive_float("LONG_POLL_MAX_WAIT", 25.0)
LONG_POLL_PER_CLIENT = _positive_int("LONG_POLL_PER_CLIENT", 8)
LONG_POLL_MAX_WAITERS = _positive_int("LONG_POLL_MAX_WAITERS", 1000)
# Behind a reverse proxy, the header that carries the visitor's address (e.g. X-Forwarded-For;
# its last entry, the one the proxy appended, is used). Empty: the connection's own address.
# Only set it when every request comes through that proxy, or clients could forge the header.
TRUSTED_PROXY_HEADER = env.str("TRUSTED_PROXY_HEADER", default="").strip()
if TRUSTED_PROXY_HEADER and not re.fullmatch(r"[A-Za-z0-9-]+", TRUSTED_PROXY_HEADER):
    raise ImproperlyConfigured(
        f"TRUSTED_PROXY_HEADER={TRUSTED_PROXY_HEADER!r} is not an HTTP header name "
        "(for example X-Forwarded-For or X-Real-IP)"
    )
# Public address of the site, e.g. https://fakes.example.com: used for the image links in
# metadata written outside a web request (manage.py generate). Pages use the request's host.
SITE_URL = env.str("SITE_URL", default="").rstrip("/")
if SITE_URL and urlsplit(SITE_URL).scheme not in {"http", "https"}:
    raise ImproperlyConfigured(f"SITE_URL={SITE_URL!r} must start with http:// or https://")
INCEPTION_WEIGHTS = env.str("INCEPTION_WEIGHTS", default="")
TRAIN_CHUNK_SECONDS = _positive_int("TRAIN_CHUNK_SECONDS", 240)
# The recipe new runs start from (gan_app.gan.config.PRESETS; docs/training.md "Recipes").
TRAIN_PRESETS = ("nff", "seed-dcgan")
TRAIN_DEFAULT_PRESET = env.str("TRAIN_DEFAULT_PRESET", default="nff")
if TRAIN_DEFAULT_PRESET not in TRAIN_PRESETS:
    raise ImproperlyConfigured(
        f"TRAIN_DEFAULT_PRESET={TRAIN_DEFAULT_PRESET!r} is not a recipe; "
        f"choose one of {', '.join(TRAIN_PRESETS)}"
    )
# --- Training pipeline (gan_app.training) ---
# A chunk renews its lease on the run every epoch; a lease older than this means its worker
# died, and a redelivered chunk takes the run over. Longer than any one epoch, shorter than the
# broker's visibility timeout.
TRAIN_LEASE_SECONDS = _positive_int("TRAIN_LEASE_SECONDS", 600)
# The job kernel's lease per kind (nftsite.jobs): a running job silent for longer has lost its
# runner, and the watchdog (celery beat, every WATCHDOG_SECONDS) sends its task again.
JOB_LEASE_SECONDS = {
    "ingest": _positive_int("INGEST_LEASE_SECONDS", 300),
    # Analytics beats only when a run starts and ends: its lease outlives the task time limit.
    "analytics": _positive_int("ANALYTICS_LEASE_SECONDS", 1200),
    "training": TRAIN_LEASE_SECONDS,
    "generation": _positive_int("GENERATION_LEASE_SECONDS", 120),
    # A fabrication beats at each checkpoint (every FABRICATE_CHECKPOINT_EVERY tokens).
    "fabrication": _positive_int("FABRICATION_LEASE_SECONDS", 300),
}
# Fabrication: the most tokens one job may make, and how often it checkpoints.
FABRICATE_MAX_COUNT = _positive_int("FABRICATE_MAX_COUNT", 10_000)
FABRICATE_CHECKPOINT_EVERY = _positive_int("FABRICATE_CHECKPOINT_EVERY", 50)
WATCHDOG_SECONDS = _positive_int("WATCHDOG_SECONDS", 30)
ORPHAN_COLLECT_SECONDS = _positive_int("ORPHAN_COLLECT_SECONDS", 600)
ORPHAN_MIN_AGE_SECONDS = _positive_int("ORPHAN_MIN_AGE_SECONDS", 1800)
CELERY_BEAT_SCHEDULE = {
    "resend-stale-jobs": {
        "task": "nftsite.tasks.resend_stale_jobs",
        "schedule": float(WATCHDOG_SECONDS),
        # Its own queue if an operator wants one (tests do, to pick the worker that runs it).
        "options": {"queue": env.str("WATCHDOG_QUEUE", default="default")},
    },
    # Generated PNGs whose row never landed (a worker killed mid-render): gan_app/generation/
    # orphans.py. Only files older than ORPHAN_MIN_AGE_SECONDS, well past any render's limit.
    "collect-orphan-images": {
        "task": "gan_app.tasks.collect_orphan_images",
        "schedule": float(ORPHAN_COLLECT_SECONDS),
        "options": {"queue": env.str("WATCHDOG_QUEUE", default="default")},
    },
}
# Decoded training images (one .npy per set + preprocessing), reused by every chunk of a run.
TRAIN_CACHE_DIR = Path(env.str("TRAIN_CACHE_DIR", default=str(VAR_DIR / "train-cache")))
# manage.py bootstrap queues a short 32 px demo run (auto-published) on a fresh site.
BOOTSTRAP_DEMO_TRAINING = _bool("BOOTSTRAP_DEMO_TRAINING", True)

# --- Evaluation --------------------------------------------------------------------------------
# Withhold generated images flagged as near-copies of a training image: their permalinks, pages
# and gallery entries say why instead of showing them.
REFUSE_NEAR_COPIES = _bool("REFUSE_NEAR_COPIES", True)
# Generated images per evaluation: the held-out real half, at most this many.
EVALUATION_MAX_SAMPLES = _positive_int("EVALUATION_MAX_SAMPLES", 2500)
EVALUATION_KID_SUBSETS = _positive_int("EVALUATION_KID_SUBSETS", 100)
# Evaluate every newly published generator on the train queue (trains the collection's trait
# classifier the first time), so its page shows metrics and its images get labelled.
EVALUATE_ON_PUBLISH = _bool("EVALUATE_ON_PUBLISH", True)
# The quality gate: a published generator is listed publicly only once its evaluation passes
# these (gan_app.evaluation.gate); off, publishing lists it at once.
QUALITY_GATE = _bool("QUALITY_GATE", True)
# Domain FID / the real-vs-real domain FID of the same collection.
QUALITY_GATE_MAX_FID_RATIO = _positive_float("QUALITY_GATE_MAX_FID_RATIO", 4.0)
# Share of generated images the classifier labels confidently for every trait type: at least
# this share of the real tokens' own share (the real-vs-real baseline), and at least the floor.
QUALITY_GATE_MIN_VALID_TOKEN_RATIO = _positive_float("QUALITY_GATE_MIN_VALID_TOKEN_RATIO", 0.5)
QUALITY_GATE_MIN_VALID_TOKEN_RATE = _fraction("QUALITY_GATE_MIN_VALID_TOKEN_RATE", 0.25)
# Share of generated images that are pixel near-copies of a training image.
QUALITY_GATE_MAX_NEAR_COPY_SHARE = _fraction("QUALITY_GATE_MAX_NEAR_COPY_SHARE", 0.0)

# --- Auth, i18n, logging ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOG_LEVEL = _choice("LOG_LEVEL", ["DEBUG", "INFO", "WARNING", "ERROR"], "INFO")
# json: one JSON object per line (production log pipelines); plain: for a terminal.
LOG_FORMAT = _choice("LOG_FORMAT", ["json", "plain"], "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "nftsite.logging.RedactSecrets"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
