"""Generation stage: visitors' requests (seeds, rate limits, long-poll) on the web side, and the
worker side that renders, stores and labels images from cached generators."""
