"""tf-partfash: part-based multi-attribute similarity learning for fashion search (Ak et al., WACV 2018)."""
__version__ = '0.1.0'
