terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
  # Configure a remote backend (S3 with locking) for a real deployment, e.g.:
  # backend "s3" { bucket = "...", key = "billing/terraform.tfstate", region = "eu-central-1", use_lockfile = true }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { Application = "aws-cost-billing", Environment = var.environment }
  }
}

# AWS Data Exports, which creates the FOCUS cost export (cost_source = "focus"), has its API in
# us-east-1 only; the export's bucket stays in var.region.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
  default_tags {
    tags = { Application = "aws-cost-billing", Environment = var.environment }
  }
}
