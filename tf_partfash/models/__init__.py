"""Networks: the AlexNet backbone, the proposed two-path part network and the baselines; a run's
network built, exported and loaded; forward passes over a dataset."""
