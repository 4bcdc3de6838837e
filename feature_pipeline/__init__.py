"""Program 1 of three: raw data -> feature groups."""
