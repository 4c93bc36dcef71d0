{{/* Egress every Pingyi pod needs: DNS, and PostgreSQL on its port. */}}
{{- define "pingyi.egressDnsAndDatabase" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- ports:
    - port: {{ .Values.database.port }}
      protocol: TCP
  {{- with .Values.database.peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
