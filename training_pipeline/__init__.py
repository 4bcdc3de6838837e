"""Program 2 of the recommender: feature views -> models in the registry."""
