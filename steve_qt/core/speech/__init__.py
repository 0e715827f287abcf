"""Speech I/O: audio loading and playback, time-aligned tiers (TIMIT, TextGrid), phone sets,
spectrograms and transcript comparison."""
