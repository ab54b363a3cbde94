variable "name" {
  description = "Globally unique S3 bucket name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name)) && !can(regex("\\.\\.", var.name))
    error_message = "The bucket name must be 3-63 characters of lower-case letters, digits, dots and hyphens."
  }
}

variable "sse_algorithm" {
  description = "Default encryption: aws:kms (customer-managed key) or AES256 (only for an S3 access-log bucket: log delivery does not support SSE-KMS)."
  type        = string
  default     = "aws:kms"

  validation {
    condition     = contains(["aws:kms", "AES256"], var.sse_algorithm)
    error_message = "sse_algorithm must be aws:kms or AES256."
  }
}

variable "kms_key_arn" {
  description = "Existing KMS key ARN for SSE-KMS; null creates a dedicated key with rotation."
  type        = string
  default     = null
}

variable "access_log_bucket" {
  description = "Bucket receiving S3 server access logs for this bucket; null disables access logging (only for the log bucket itself)."
  type        = string
  default     = null
}

variable "transition_to_ia_days" {
  description = "Days after which current objects move to STANDARD_IA; 0 disables the transition."
  type        = number
  default     = 30

  validation {
    condition     = var.transition_to_ia_days == 0 || var.transition_to_ia_days >= 30
    error_message = "S3 requires at least 30 days before a STANDARD_IA transition (or 0 to disable)."
  }
}

variable "transition_to_glacier_days" {
  description = "Days after which current objects move to GLACIER_IR; 0 disables the transition."
  type        = number
  default     = 0
}

variable "noncurrent_version_expiration_days" {
  description = "Days a superseded object version is kept before it is deleted."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "Noncurrent versions must be kept at least one day."
  }
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete a non-empty bucket (never in prod)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
