"""A dated, static table of EC2 on-demand prices, for the cost estimate of ``stockdag cluster plan``.

USD per hour, Linux, on-demand, region us-east-1, as published on the AWS
price list on the date below. Other regions cost more or less; the plan says
so. Update by editing the table and the date together.
"""
from __future__ import annotations

PRICES_DATE = "2025-06-01"
PRICES_REGION = "us-east-1"

# instance type -> (USD per hour, vCPUs, memory GiB)
EC2_PRICES: dict[str, tuple[float, int, float]] = {
    "t3.micro": (0.0104, 2, 1),
    "t3.small": (0.0208, 2, 2),
    "t3.medium": (0.0416, 2, 4),
    "t3.large": (0.0832, 2, 8),
    "t3.xlarge": (0.1664, 4, 16),
    "t3.2xlarge": (0.3328, 8, 32),
    "m5.large": (0.096, 2, 8),
    "m5.xlarge": (0.192, 4, 16),
    "m5.2xlarge": (0.384, 8, 32),
    "m5.4xlarge": (0.768, 16, 64),
    "c5.large": (0.085, 2, 4),
    "c5.xlarge": (0.17, 4, 8),
    "c5.2xlarge": (0.34, 8, 16),
    "c5.4xlarge": (0.68, 16, 32),
    "r5.large": (0.126, 2, 16),
    "r5.xlarge": (0.252, 4, 32),
}

# gp3 storage, USD per GB-month, us-east-1
EBS_GP3_GB_MONTH = 0.08


def hourly(instance_type: str) -> float | None:
    """USD per hour of one instance, or None when the table does not list it."""
    row = EC2_PRICES.get(instance_type)
    return None if row is None else row[0]
