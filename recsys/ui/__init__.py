"""The demo shop: a Streamlit app over the public KServe endpoint and the feature store (``make ui``).

Recommendations come only from the endpoint (:mod:`recsys.ui.endpoint`), exactly as a real front end would get
them; the feature store is read for what a shop page shows besides (recent purchases, prices, the choice of
customers) and written for what customers do (purchases and clicks, :mod:`recsys.ui.shop`). The app itself is
``recsys/ui/app.py``, run by ``streamlit run``.
"""
