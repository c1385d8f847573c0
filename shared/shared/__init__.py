"""Building blocks shared by every service of the order platform."""
