"""Demo stage: the synthetic layered demo collection (images, traits, sales) and its build."""
