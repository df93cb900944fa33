// Command helm_render renders a Helm chart with its default values the way `helm template` does,
// for tests: Helm is not packaged in Debian 12 and cannot be fetched offline. It uses Helm's
// template engine (Go text/template + sprig v3 functions, missingkey=zero, "<no value>" removed)
// and Helm's own functions the charts here use (include, required, toYaml, toJson, tpl), with
// values read as Helm reads them (YAML through JSON, so numbers are float64).
//
//	helm_render CHART_DIR [RELEASE_NAME] [NAMESPACE]
//
// Prints every rendered template except NOTES.txt and partials (_*.tpl) as
// "---\n# Source: CHART/templates/FILE\n...", the format of `helm template`.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/ghodss/yaml"
)

func readYAML(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func run(chartDir, release, namespace string) error {
	chart, err := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	values, err := readYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	name, _ := chart["name"].(string)
	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": true,
			"IsUpgrade": false, "Revision": 1,
		},
		"Chart": map[string]interface{}{
			"Name": name, "Version": chart["version"], "AppVersion": chart["appVersion"],
		},
	}

	root := template.New("gotpl")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env") // as in Helm: templates do not read the renderer's environment
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["toJson"] = func(v interface{}) string {
		s, _ := sprig.TxtFuncMap()["toJson"].(func(interface{}) string)
		return s(v)
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var b bytes.Buffer
		err := root.ExecuteTemplate(&b, name, data)
		return b.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		err = t.Execute(&b, data)
		return b.String(), err
	}
	root.Funcs(funcs).Option("missingkey=zero")

	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var render []string
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		tname := name + "/templates/" + filepath.Base(f)
		if _, err := root.New(tname).Parse(string(text)); err != nil {
			return err
		}
		base := filepath.Base(f)
		if !strings.HasPrefix(base, "_") && base != "NOTES.txt" {
			render = append(render, tname)
		}
	}
	for _, tname := range render {
		var b bytes.Buffer
		if err := root.ExecuteTemplate(&b, tname, top); err != nil {
			return err
		}
		out := strings.ReplaceAll(b.String(), "<no value>", "")
		if strings.TrimSpace(out) == "" {
			continue
		}
		fmt.Printf("---\n# Source: %s\n%s\n", tname, strings.TrimSpace(out))
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: helm_render CHART_DIR [RELEASE_NAME] [NAMESPACE]")
		os.Exit(2)
	}
	release, namespace := "lmgate", "default"
	if len(os.Args) > 2 {
		release = os.Args[2]
	}
	if len(os.Args) > 3 {
		namespace = os.Args[3]
	}
	if err := run(os.Args[1], release, namespace); err != nil {
		fmt.Fprintln(os.Stderr, "helm_render:", err)
		os.Exit(1)
	}
}
