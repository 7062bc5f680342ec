"""Evaluation stage: real image sets, trait classifiers, evaluation reports of checkpoints and
generators, the labelling of generated images, and their admin pages."""
