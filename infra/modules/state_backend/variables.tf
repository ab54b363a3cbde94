variable "bucket_name" {
  description = "Name of the Terraform state bucket."
  type        = string
}

variable "lock_table_name" {
  description = "Name of the DynamoDB table used for state locking."
  type        = string
  default     = "millpond-terraform-locks"
}

variable "access_log_bucket" {
  description = "Bucket receiving S3 access logs of the state bucket."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
