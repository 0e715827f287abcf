"""Figures for papers, drawn with matplotlib from the data the window shows."""
