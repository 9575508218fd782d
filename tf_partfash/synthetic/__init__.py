"""The built-in synthetic in-shop dataset: rendered garments in the Shopping100k layout."""
