"""Program 3 of the recommender: embeddings and index, KServe servers, batch scoring, deployment."""
