package hb;
class Placeholder {}
