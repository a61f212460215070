// Package sqlcheck holds no code: its test reads the module's source and
// fails if any SQL sent to PostgreSQL is built from anything but constants
// (catalogue case 55: values travel as placeholders, never in the text).
package sqlcheck
