"""Fabrication stage: a whole new collection from a published generator.

runs.py (create a job from checked options, pause/resume/cancel; web, admin and CLI side),
worker.py (the ``generate`` queue's side: fabricate with checkpoints, build the export, import
the collection), compare.py (what the comparison page shows), views.py, admin.py.
The ML itself is ``gan_app.gan.fabrication`` (Django-free).
"""
