variable "environment" {
  description = "Environment name: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "bucket_prefix" {
  description = "Globally unique prefix of the bucket names (e.g. your organisation), lower case."
  type        = string
}

variable "oidc_provider_arn" {
  description = "IAM OIDC provider ARN of the EKS cluster (IRSA)."
  type        = string
}

variable "oidc_provider_url" {
  description = "Issuer of the EKS OIDC provider without https://."
  type        = string
}

variable "lake_noncurrent_days" {
  description = "Days superseded lake object versions are kept."
  type        = number
  default     = 30
}

variable "backup_glacier_days" {
  description = "Days after which backups move to Glacier Instant Retrieval."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Extra tags."
  type        = map(string)
  default     = {}
}
