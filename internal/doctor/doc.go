// Package doctor diagnoses an install: it checks, in the order a first install fails, that the
// ClearML API answers, the credentials work, the queues exist, the Kubernetes rights and Secrets
// are there and every queue's template renders, and names the values key that fixes each finding.
package doctor
