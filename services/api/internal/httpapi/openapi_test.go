package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

func testHandler() *echo.Echo {
	return New(Options{Log: zerolog.Nop(), MaxBodyBytes: 1 << 20, Backend: func() *Backend { return nil }}).(*echo.Echo)
}

// TestOpenAPIMatchesRoutes checks that every echo route is documented with
// its method and every documented operation is a route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routed := map[string]bool{}
	for _, r := range testHandler().Routes() {
		if strings.HasSuffix(r.Name, "glob..func1") || r.Path == "" {
			continue
		}
		routed[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	if len(routed) == 0 {
		t.Fatal("no routes")
	}
	for k := range routed {
		if !documented[k] {
			t.Errorf("route %s is not documented", k)
		}
	}
	for k := range documented {
		if !routed[k] {
			t.Errorf("documented %s is not a route", k)
		}
	}
	// Path parameters are declared.
	for path, ops := range doc.Paths {
		for _, m := range echoParam.FindAllStringSubmatch(strings.NewReplacer("{", ":", "}", "").Replace(path), -1) {
			raw, _ := json.Marshal(ops)
			if !strings.Contains(string(raw), `"name":"`+m[1]+`"`) {
				t.Errorf("%s does not declare parameter %s", path, m[1])
			}
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	rec := httptest.NewRecorder()
	testHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !slices.Equal(rec.Body.Bytes(), openAPIDoc) {
		t.Error("served document differs from the embedded one")
	}
}

func TestPanicIsJSON500(t *testing.T) {
	e := testHandler()
	e.GET("/boom", func(echo.Context) error { panic("boom") })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	var body ErrorBody
	if rec.Code != http.StatusInternalServerError || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != CodeInternal {
		t.Errorf("status %d body %s", rec.Code, rec.Body)
	}
}
