"""Training stage: TrainingRuns on a TrainingSet, chunked and leased, with their checkpoints and
the admin forms that start them."""
