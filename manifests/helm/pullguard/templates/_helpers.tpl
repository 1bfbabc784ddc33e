{{/*
Names. With the release called "pullguard" (the README's command) every object is named as in
manifests/base; fullnameOverride names them otherwise.
*/}}
{{- define "pullguard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The selector: the same two labels as manifests/base, so moving from kustomize keeps the Deployment. */}}
{{- define "pullguard.selectorLabels" -}}
app.kubernetes.io/name: pullguard
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "pullguard.labels" -}}
{{ include "pullguard.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "pullguard.tlsSecretName" -}}
{{- if eq .Values.certificates.source "secret" -}}
{{- required "certificates.secret.name is required with certificates.source=secret" .Values.certificates.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "pullguard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The names the API server dials for the webhook's Service reference. */}}
{{- define "pullguard.dnsNames" -}}
{{- $svc := printf "%s.%s.svc" (include "pullguard.fullname" .) .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc .Values.clusterDomain) | toJson -}}
{{- end -}}

{{/*
The webhook's timeoutSeconds: pullguard's --timeout plus 2 s for connecting, queueing and the trip
back, so the API server never gives up on an answer that is on its way. At most 30 (the API's limit).
*/}}
{{/* A Go-style duration as pullguard reads it ("8s", "1m30s", "1500ms") in milliseconds. */}}
{{- define "pullguard.durationMs" -}}
{{- $ms := 0.0 -}}
{{- range $part := regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" (toString .) -1 -}}
{{- $n := float64 (regexFind "^[0-9]+(\\.[0-9]+)?" $part) -}}
{{- $unit := regexFind "(ms|s|m|h)$" $part -}}
{{- $scale := dict "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0 -}}
{{- $ms = addf $ms (mulf $n (get $scale $unit)) -}}
{{- end -}}
{{- $ms -}}
{{- end -}}

{{- define "pullguard.timeoutMs" -}}
{{- $t := toString .Values.timeout -}}
{{- $ms := include "pullguard.durationMs" $t | float64 -}}
{{- if or (lt $ms 100.0) (gt $ms 28000.0) -}}
{{- fail (printf "timeout %s is outside 100ms..28s: the webhook's timeoutSeconds (the timeout + 2s) may be at most 30" $t) -}}
{{- end -}}
{{- $ms -}}
{{- end -}}

{{/* pullguard's own limits on the audit settings, said at install rather than by a crash-looping pod. */}}
{{- define "pullguard.checkAudit" -}}
{{- $i := toString .Values.audit.interval -}}
{{- $ms := include "pullguard.durationMs" $i | float64 -}}
{{- if gt $ms 0.0 -}}
{{- if lt $ms 1000.0 -}}
{{- fail (printf "audit.interval %s is shorter than 1s (0 turns the audit off)" $i) -}}
{{- end -}}
{{- end -}}
{{- with .Values.audit.registryQps -}}
{{- $q := float64 . -}}
{{- if or (lt $q 0.01) (gt $q 100.0) -}}
{{- fail (printf "audit.registryQps %v is outside 0.01..100" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Room for preStop (5 s), a review that just arrived (the timeout + 2 s) and exiting. */}}
{{- define "pullguard.gracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- $s := ceil (divf (include "pullguard.timeoutMs" . | float64) 1000.0) | int -}}
{{- max 30 (add 5 $s 2 10) -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{- define "pullguard.webhookTimeoutSeconds" -}}
{{- $ms := include "pullguard.timeoutMs" . | float64 -}}
{{- $s := ceil (divf $ms 1000.0) | int -}}
{{- min 30 (add $s 2) -}}
{{- end -}}

{{/* Credential provider presets: where each platform's nodes keep the plugin and its config. */}}
{{- define "pullguard.credentialProvider" -}}
{{- $p := .Values.credentialProviders -}}
{{- if eq $p.preset "eks" -}}
{{- toJson (dict "config" "/etc/eks/image-credential-provider/config.json" "binDir" "/etc/eks/image-credential-provider" "volumes" (list (dict "name" "image-credential-provider" "hostPath" "/etc/eks/image-credential-provider" "mountPath" "/etc/eks/image-credential-provider" "type" "Directory"))) -}}
{{- else if eq $p.preset "gke" -}}
{{- toJson (dict "config" "/etc/pullguard/credential-provider/cri-auth-config.yaml" "binDir" "/home/kubernetes/bin" "volumes" (list (dict "name" "credential-provider-bin" "hostPath" "/home/kubernetes/bin" "mountPath" "/home/kubernetes/bin" "type" "Directory") (dict "name" "credential-provider-config" "hostPath" "/home/kubernetes/cri-auth-config.yaml" "mountPath" "/etc/pullguard/credential-provider/cri-auth-config.yaml" "type" "File"))) -}}
{{- else if eq $p.preset "aks" -}}
{{- toJson (dict "config" "/etc/pullguard/credential-provider/credential-provider-config.yaml" "binDir" "/var/lib/kubelet/credential-provider" "volumes" (list (dict "name" "credential-provider-bin" "hostPath" "/var/lib/kubelet/credential-provider" "mountPath" "/var/lib/kubelet/credential-provider" "type" "Directory") (dict "name" "credential-provider-config" "hostPath" "/var/lib/kubelet/credential-provider-config.yaml" "mountPath" "/etc/pullguard/credential-provider/credential-provider-config.yaml" "type" "File") (dict "name" "azure-json" "hostPath" "/etc/kubernetes/azure.json" "mountPath" "/etc/kubernetes/azure.json" "type" "File"))) -}}
{{- else if eq $p.preset "custom" -}}
{{- $c := $p.custom -}}
{{- $config := required "credentialProviders.custom.configHostPath is required with preset custom" $c.configHostPath -}}
{{- $bin := required "credentialProviders.custom.binDirHostPath is required with preset custom" $c.binDirHostPath -}}
{{- $volumes := list (dict "name" "credential-provider-bin" "hostPath" $bin "mountPath" $bin "type" "Directory") (dict "name" "credential-provider-config" "hostPath" $config "mountPath" "/etc/pullguard/credential-provider/config" "type" "File") -}}
{{- range $i, $f := $c.extraHostFiles -}}
{{- $volumes = append $volumes (dict "name" (printf "credential-provider-file-%d" $i) "hostPath" $f "mountPath" $f "type" "File") -}}
{{- end -}}
{{- toJson (dict "config" "/etc/pullguard/credential-provider/config" "binDir" $bin "volumes" $volumes) -}}
{{- else -}}
{{- toJson (dict) -}}
{{- end -}}
{{- end -}}

{{/*
Where the nodes' runtime pulls from: the flag and the folder mounted for it. From the node
(hostPath) the folder is mounted at the node's own path, so a hosts.toml's absolute `ca` paths
resolve; registries.conf's folder is mounted rather than the file, which would keep its old version
once the node's file is replaced. From a ConfigMap: /etc/pullguard/registry-mirrors. CRI-O's own
folder (crioDir) is read from the node only, mounted at its own path (unless it is registries.conf's
folder, mounted already), so the paths its files name resolve.
*/}}
{{- define "pullguard.registryMirrors" -}}
{{- $m := .Values.registryMirrors -}}
{{- $fromConfigMap := ne $m.configMap.name "" -}}
{{- if and (eq $m.source "containerd") $fromConfigMap (not $m.configMap.items) -}}
{{- fail "registryMirrors.configMap.items is required with source containerd: a ConfigMap's keys are flat files, and containerd's layout needs <host>/hosts.toml (e.g. {key: docker.io, path: docker.io/hosts.toml})" -}}
{{- end -}}
{{- if eq $m.source "containerd" -}}
{{- $dir := ternary "/etc/pullguard/registry-mirrors" $m.containerdHostPath $fromConfigMap -}}
{{- toJson (dict "flag" (printf "--containerd-hosts-dir=%s" $dir) "mountPath" $dir) -}}
{{- else if eq $m.source "crio" -}}
{{- $dir := ternary "/etc/pullguard/registry-mirrors" (dir $m.crioHostPath) $fromConfigMap -}}
{{- $file := ternary "registries.conf" (base $m.crioHostPath) $fromConfigMap -}}
{{- $crio := ternary "" $m.crioConfigHostPath $fromConfigMap -}}
{{- $crioMount := and (ne $crio "") (ne $crio $dir) -}}
{{- toJson (dict "flag" (printf "--registries-conf=%s/%s" $dir $file) "mountPath" $dir "crioDir" $crio "crioMount" $crioMount) -}}
{{- else -}}
{{- toJson (dict) -}}
{{- end -}}
{{- end -}}

{{/* hostPath volumes (plugins, their config, the nodes' mirror files) are forbidden by the baseline and restricted levels. */}}
{{- define "pullguard.needsHostPath" -}}
{{- if or (ne .Values.credentialProviders.preset "none") (and (ne .Values.registryMirrors.source "none") (eq .Values.registryMirrors.configMap.name "")) -}}true{{- end -}}
{{- end -}}

{{/*
Node pools, said at install rather than by a crash-looping pod: the files need pools to read them;
a pool's relative paths must lie on a mount of nodePools.files (else pullguard cannot start); and a
pool other than the one pullguard runs on (`fromFlags`) must not read the node's files the chart
mounts from the host (credential providers, registryMirrors), which are not that pool's.
*/}}
{{- define "pullguard.checkNodePools" -}}
{{- $np := .Values.nodePools -}}
{{- if and $np.files (not $np.pools) -}}
{{- fail "nodePools.files needs nodePools.pools: the files are read through the pools file" -}}
{{- end -}}
{{- $hostMounts := list -}}
{{- range (include "pullguard.credentialProvider" . | fromJson).volumes -}}
{{- $hostMounts = append $hostMounts .mountPath -}}
{{- end -}}
{{- $mirrors := include "pullguard.registryMirrors" . | fromJson -}}
{{- if and $mirrors.mountPath (eq .Values.registryMirrors.configMap.name "") -}}
{{- $hostMounts = append $hostMounts $mirrors.mountPath -}}
{{- end -}}
{{- if $mirrors.crioMount -}}
{{- $hostMounts = append $hostMounts $mirrors.crioDir -}}
{{- end -}}
{{- $keys := list "nodeDockerConfig" "imageCredentialProviderConfig" "imageCredentialProviderBinDir" "containerdHostsDir" "registriesConf" "registriesConfDir" "shortNameAliases" "crioConfig" "crioConfigDir" "signaturePolicy" "signaturePolicyDir" "registriesD" -}}
{{- range $i, $pool := $np.pools -}}
{{- if not $pool.fromFlags -}}
{{- range $key := $keys -}}
{{- with (get $pool $key) -}}
{{- $path := clean (toString .) -}}
{{- $at := printf "nodePools.pools[%d] (%s).%s %s" $i $pool.name $key $path -}}
{{- if isAbs $path -}}
{{- range $hostMounts -}}
{{- if or (eq $path .) (hasPrefix (printf "%s/" (trimSuffix "/" .)) $path) -}}
{{- fail (printf "%s is on the hostPath mount %s: those are the files of the node pullguard runs on, not the pool's; mount the pool's own from a ConfigMap or Secret with nodePools.files" $at .) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- $found := false -}}
{{- range $np.files -}}
{{- if or (eq $path .mountPath) (hasPrefix (printf "%s/" .mountPath) $path) -}}
{{- $found = true -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "%s is under no nodePools.files mountPath: mount the ConfigMap or Secret that holds it there (paths are relative to /etc/pullguard/pools)" $at) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
