{{/*
Pieces shared by the templates. Each template here mirrors one jinja2 template of
cli/weft_cli/templates; tests/cli/test_charts.py checks that `helm template` renders
the objects `weft install` renders, for the same values.
*/}}

{{/* Weft's namespace is skipped by its own webhooks: not one that users' pods run in. */}}
{{- define "weft.namespace" -}}
{{- if has .Release.Namespace (list "default" "kube-system") -}}
{{- fail (printf "install Weft in a namespace of its own (helm install --namespace weft --create-namespace), not %s" .Release.Namespace) -}}
{{- end -}}
{{- .Release.Namespace -}}
{{- end -}}

{{/*
Where the mesh identity comes from (weft_cli.install.identity):
- given: trustAnchorsPEM, issuer.crt and issuer.key; the chart renders the ConfigMap of
  trust roots and the issuer Secret.
- external: issuer.external=true; the issuer Secret weft-identity-issuer is written by
  someone else (a cert-manager Certificate); the chart renders the trust roots only.
- operator: nothing given; the operator generates both at its first start
  (--generate-identity) and later starts keep them.
*/}}
{{- define "weft.identitySource" -}}
{{- $identity := .Values.identity -}}
{{- $pems := list $identity.trustAnchorsPEM $identity.issuer.crt $identity.issuer.key | compact -}}
{{- if $identity.issuer.external -}}
{{- if not $identity.trustAnchorsPEM -}}
{{- fail "identity.issuer.external=true needs identity.trustAnchorsPEM: the anchors that signed the external issuer" -}}
{{- end -}}
{{- if or $identity.issuer.crt $identity.issuer.key -}}
{{- fail "identity.issuer.external=true: the issuer's crt and key live in the Secret weft-identity-issuer, not in values" -}}
{{- end -}}
external
{{- else if eq (len $pems) 3 -}}
given
{{- else if eq (len $pems) 0 -}}
operator
{{- else -}}
{{- fail "give all of identity.trustAnchorsPEM, identity.issuer.crt, identity.issuer.key or none (or issuer.external=true with trustAnchorsPEM)" -}}
{{- end -}}
{{- end -}}

{{- define "weft.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: weft
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .root.Values.image.tag | quote }}
{{- end -}}

{{- define "weft.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
{{- end -}}

{{- define "weft.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "weft.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end -}}

{{/* Replicas on different nodes where possible (preferred: small clusters run all). */}}
{{- define "weft.antiAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels: {app.kubernetes.io/name: {{ . }}}
{{- end -}}

{{- define "weft.webhookNamespaces" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: [kube-system, {{ . }}]
    - key: config.weft.dev/admission-webhooks
      operator: NotIn
      values: [disabled]
{{- end -}}
