"""The window's small evented models (Qt-free): open files, navigation, attention and features
views, experiments, and the document that composes them."""
