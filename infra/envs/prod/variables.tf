variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "bucket_prefix" {
  description = "Globally unique prefix of the bucket names."
  type        = string
}

variable "oidc_provider_arn" {
  description = "IAM OIDC provider ARN of the EKS cluster."
  type        = string
}

variable "oidc_provider_url" {
  description = "Issuer of the EKS OIDC provider without https://."
  type        = string
}
