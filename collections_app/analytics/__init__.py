"""Analytics stage: load a collection's data, compute prices, rarity and chart data, store the
result in the catalog's cache, report it; and the training subsets chosen by those figures."""
