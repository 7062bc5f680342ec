"""Hooks through which a higher app adds to the catalog's pages: the catalog never imports it.

``HOME_PAGE``: functions ``(collections) -> dict`` whose results join the home page's context
(``gan_app`` registers one in its ``AppConfig.ready``: generators, their images, the hero grid).
"""

HOME_PAGE = []
