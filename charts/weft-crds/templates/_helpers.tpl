{{/*
The `spec.conversion` of TrafficSplit, HTTPRouteGroup and TrafficTarget: the Service of
the control plane's webhooks (weft_cli.manifests.crd_conversion_for_service), or None.
*/}}
{{- define "weft-crds.conversion" -}}
{{- if .Values.conversionWebhook.enabled -}}
strategy: Webhook
webhook:
  conversionReviewVersions:
  - v1
  clientConfig:
    service:
      name: weft-webhooks
      namespace: {{ .Values.controlPlaneNamespace }}
      port: 443
      path: /convert
{{- else -}}
strategy: None
{{- end -}}
{{- end -}}
