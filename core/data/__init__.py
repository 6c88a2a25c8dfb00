"""Data: images as hospitals store them, preprocessing, the labelled data set and its cache."""
