variable "name_prefix" {
  description = "Prefix of role names, e.g. millpond-dev."
  type        = string
}

variable "lake_bucket_arn" {
  description = "ARN of the lake bucket."
  type        = string
}

variable "backup_bucket_arn" {
  description = "ARN of the backup bucket (pipeline writes, consumers never read it)."
  type        = string
}

variable "kms_key_arns" {
  description = "KMS keys encrypting the lake and backup buckets."
  type        = list(string)
}

variable "consumer_prefixes" {
  description = "Lake prefixes read-only consumers may read (published layers only)."
  type        = list(string)
  default     = ["gold/", "serving/"]
}

variable "pipeline_secret_arns" {
  description = "Secrets Manager secrets the pipeline may read."
  type        = list(string)
  default     = []
}

variable "consumer_secret_arns" {
  description = "Secrets Manager secrets the consumers (Superset, Cube) may read."
  type        = list(string)
  default     = []
}

variable "secrets_kms_key_arn" {
  description = "KMS key encrypting the secrets (decrypt only)."
  type        = string
}

variable "oidc_provider_arn" {
  description = "IAM OIDC provider of the EKS cluster (IRSA)."
  type        = string
}

variable "oidc_provider_url" {
  description = "Issuer host/path of the EKS OIDC provider, without https://."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the workloads."
  type        = string
}

variable "pipeline_service_account" {
  description = "Kubernetes service account of the pipeline pods."
  type        = string
  default     = "millpond-pipeline"
}

variable "consumer_service_accounts" {
  description = "Kubernetes service accounts of the read-only consumers."
  type        = list(string)
  default     = ["millpond-superset", "millpond-cube"]
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
