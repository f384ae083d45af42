terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
      # aws: the stack's region (buckets, Glue, Athena); aws.data_exports: us-east-1, where the Data
      # Exports API is (the export itself).
      configuration_aliases = [aws.data_exports]
    }
  }
}
