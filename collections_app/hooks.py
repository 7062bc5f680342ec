"""Hooks through which a higher app adds to the catalog's pages: the catalog never imports it.

``HOME_PAGE``: functions ``(collections) -> dict`` whose results join the home page's context
(``gan_app`` registers one in its ``AppConfig.ready``: generators, their images, the hero grid).

``IMAGE_PROFILE``: functions ``(collection) -> dict`` that read a collection's images and say
what they are (``gan_app`` registers the pixel-art detection its training and rendering use:
``{"images": n, "pixel_art": profile dict or None, "reason": why not}``). Analytics stores
the result on ``Collection.image_profile`` once per data version.
"""

HOME_PAGE = []
IMAGE_PROFILE = []
