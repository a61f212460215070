package bridge

// CapLogValueForTest exposes capLogValue to the external tests.
var CapLogValueForTest = capLogValue
