/**
 * THE appliance version, in one place: `ONE_SERVICE_VERSION` in appliance/appliance.sh is generated
 * from it (`context-schema generate`; a test fails on drift), and the image build puts it in the
 * image manifest and the marketplace YAML.
 */
export const APPLIANCE_VERSION = '0.1.0';
