package ststest

import (
	"encoding/xml"
	"net/http"
)

// The XML shapes of STS's Query protocol answers.

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type assumeRoleResponse struct {
	XMLName  xml.Name         `xml:"AssumeRoleResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   assumeRoleResult `xml:"AssumeRoleResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type assumeRoleResult struct {
	SourceIdentity   string          `xml:"SourceIdentity,omitempty"`
	AssumedRoleUser  assumedRoleUser `xml:"AssumedRoleUser"`
	Credentials      credentials     `xml:"Credentials"`
	PackedPolicySize *int            `xml:"PackedPolicySize,omitempty"`
	// SessionTokenSize and SessionTokenUtilization succeed PackedPolicySize.
	SessionTokenSize        int `xml:"SessionTokenSize"`
	SessionTokenUtilization int `xml:"SessionTokenUtilization"`
}

type assumeRoleWithWebIdentityResponse struct {
	XMLName  xml.Name                        `xml:"AssumeRoleWithWebIdentityResponse"`
	Xmlns    string                          `xml:"xmlns,attr"`
	Result   assumeRoleWithWebIdentityResult `xml:"AssumeRoleWithWebIdentityResult"`
	Metadata responseMetadata                `xml:"ResponseMetadata"`
}

type assumeRoleWithWebIdentityResult struct {
	Credentials                 credentials     `xml:"Credentials"`
	SubjectFromWebIdentityToken string          `xml:"SubjectFromWebIdentityToken"`
	AssumedRoleUser             assumedRoleUser `xml:"AssumedRoleUser"`
	PackedPolicySize            *int            `xml:"PackedPolicySize,omitempty"`
	Provider                    string          `xml:"Provider"`
	Audience                    string          `xml:"Audience"`
	SourceIdentity              string          `xml:"SourceIdentity,omitempty"`
	SessionTokenSize            int             `xml:"SessionTokenSize"`
	SessionTokenUtilization     int             `xml:"SessionTokenUtilization"`
}

type assumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string `xml:"Arn"`
}

type credentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type getCallerIdentityResponse struct {
	XMLName  xml.Name         `xml:"GetCallerIdentityResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   callerIdentity   `xml:"GetCallerIdentityResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type callerIdentity struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type errorResponse struct {
	XMLName   xml.Name    `xml:"ErrorResponse"`
	Xmlns     string      `xml:"xmlns,attr"`
	Error     errorDetail `xml:"Error"`
	RequestID string      `xml:"RequestId"`
}

type errorDetail struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// errorStatus is the HTTP status STS answers with each error code; codes not
// listed answer 400.
var errorStatus = map[string]int{
	"AccessDenied":               http.StatusForbidden,
	"ExpiredToken":               http.StatusForbidden,
	"IDPRejectedClaim":           http.StatusForbidden,
	"InvalidClientTokenId":       http.StatusForbidden,
	"MissingAuthenticationToken": http.StatusForbidden,
	"OptInRequired":              http.StatusForbidden,
	"RegionDisabledException":    http.StatusForbidden,
	"SignatureDoesNotMatch":      http.StatusForbidden,
	"InternalFailure":            http.StatusInternalServerError,
	"ServiceUnavailable":         http.StatusServiceUnavailable,
}

// writeError answers code with its usual status.
func writeError(w http.ResponseWriter, requestID, code, msg string) (int, string) {
	status, ok := errorStatus[code]
	if !ok {
		status = http.StatusBadRequest
	}
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	return writeErrorStatus(w, requestID, status, typ, code, msg)
}

func writeErrorStatus(w http.ResponseWriter, requestID string, status int, typ, code, msg string) (int, string) {
	writeXML(w, status, errorResponse{
		Xmlns:     xmlns,
		Error:     errorDetail{Type: typ, Code: code, Message: msg},
		RequestID: requestID,
	})
	return status, code
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
