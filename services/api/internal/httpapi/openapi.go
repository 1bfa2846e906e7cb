package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the OpenAPI 3 document of every route, written by hand;
// TestOpenAPIMatchesRoutes keeps it and the routes in step.
//
//go:embed openapi.json
var openAPIDoc []byte

func (h *handler) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDoc)
}
