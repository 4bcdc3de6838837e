"""Online serving (design §7): four KServe models in two transformer → predictor pairs, and their launcher.

    client ─▶ query transformer ─▶ query predictor (query tower)
                     └─────────▶ ranking transformer ─▶ ranking predictor (CatBoost)

* :mod:`.query_transformer` — the public endpoint: validation (:mod:`.requests`), the customer's online row and
  cold start (:mod:`.customers`), the query tower's inputs (:mod:`.tower_inputs`).
* :mod:`.query_predictor` — the query tower.
* :mod:`.ranking_transformer` — retrieval (:mod:`.retrieve`), filters (:mod:`.filters`), the ranker's features;
  then the order stage (:mod:`.order`).
* :mod:`.ranking_predictor` — the ranker.
* :mod:`.model_set` — one consistent run; :mod:`.chain` — the same four objects in one process;
  :mod:`.servers` / :mod:`.process` — four ``ModelServer`` processes on loopback; :mod:`.actions` — purchases
  written back so the next request sees them.

Modules import KServe, and the predictors TensorFlow or CatBoost, only when used: import what you need.
"""
