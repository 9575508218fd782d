"""Fashion search (paper §4.6, §5): gallery indexes and prototypes, Eq. 4-6, the compact index,
each method's query encoder, a trained run opened once, and one shopper's search with its pictures
(Fig. 7-8)."""
