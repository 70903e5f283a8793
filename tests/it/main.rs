mod intercept;
mod smoke {
    #[test]
    fn builds() {
        assert_eq!(1 + 1, 2);
    }
}
