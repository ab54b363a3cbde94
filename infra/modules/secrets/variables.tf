variable "name_prefix" {
  description = "Secret names are <name_prefix>/<key>, e.g. millpond-dev/superset."
  type        = string
}

variable "secrets" {
  description = "Secrets to create, keyed by short name, with a description of the JSON keys they hold. Values are never set here: operators put them in with `aws secretsmanager put-secret-value`."
  type        = map(string)
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
