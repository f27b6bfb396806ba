"""Retention analytics: KPIs, cohorts, RFM, CLV and churn models."""
