"""Models behind the adapter Protocol: the entry-point registry, the shared pipeline, sites,
capture taps, previews, devices, result buffers and the extraction files (.npz)."""
