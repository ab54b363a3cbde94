# One-time, per AWS account: the remote-state bucket and lock table that infra/envs/* use.
# Run with local state (`terraform init && terraform apply`), then keep its state file safe or
# migrate it into the new bucket (`terraform init -migrate-state` after adding a backend block).

terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = "millpond"
      managed-by = "terraform"
    }
  }
}

variable "region" {
  description = "AWS region of the state bucket."
  type        = string
  default     = "eu-west-1"
}

variable "bucket_prefix" {
  description = "Globally unique prefix of the bucket names."
  type        = string
}

module "state_access_logs" {
  #checkov:skip=CKV_AWS_145:S3 server access log delivery only supports SSE-S3 (AES256) target buckets, so this log bucket cannot use SSE-KMS
  source = "../modules/lake_bucket"

  name                               = "${var.bucket_prefix}-millpond-terraform-state-logs"
  sse_algorithm                      = "AES256"
  transition_to_ia_days              = 30
  noncurrent_version_expiration_days = 30
}

module "state_backend" {
  source = "../modules/state_backend"

  bucket_name       = "${var.bucket_prefix}-millpond-terraform-state"
  lock_table_name   = "millpond-terraform-locks"
  access_log_bucket = module.state_access_logs.bucket_id
}

output "backend_config" {
  description = "Values for infra/envs/*/backend.hcl."
  value = {
    bucket         = module.state_backend.bucket
    dynamodb_table = module.state_backend.lock_table
    kms_key_id     = module.state_backend.kms_key_arn
  }
}
