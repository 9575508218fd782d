"""Networks: the AlexNet backbone, the proposed two-path part network and the baselines."""
