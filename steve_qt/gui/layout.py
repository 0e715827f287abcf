"""The window's named sizes (pixels), shared by the main window and the docks it assembles."""

#: the window's first size
DEFAULT_WIDTH_PX, DEFAULT_HEIGHT_PX = 1280, 900
#: widths of the left (utterances, heads) and right (panels) dock columns in a 1280 px window;
#: narrower windows scale them down (to what their panels need at least), see fit_docks
LEFT_COLUMN_PX, RIGHT_COLUMN_PX = 330, 420
#: first heights of the utterance list and the heads grid in the left column
UTTERANCES_PX, HEADS_PX = 140, 600
#: the right column's height given to its upper stack (phone matrix, experiments)
RIGHT_UPPER_SHARE = 0.45
