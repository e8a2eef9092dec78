"""Prometheus metrics: what is counted (``families``), where requests are counted (``observe``), what is
read when scraped (``scrape``) and who may read ``/metrics`` (``view``). README, "Metrics"."""
