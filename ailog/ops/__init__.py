"""Operations: metrics for Prometheus, Prefect automations (alerts on the jobs themselves), events, doctor."""
