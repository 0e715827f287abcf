"""Corpus-scale features: the Dask runner, corpus statistics, the activation cache, the feature
index, probes, sparse autoencoders and listening to a feature."""
